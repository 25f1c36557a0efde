extends Node
## Autoload "Net": reads the command line, runs the ENet server or the headless test client, and holds the
## hello/welcome RPCs (an autoload has the same node path, /root/Net, on every peer).
##
##   server: -- --server [--port=12077] [--max-players=8] [--bind=ADDR] [--empty-server-timeout=S]
##           (--server is implied in a dedicated-server export)
##   client: -- --connect=HOST:PORT [--name=X] [--timeout=10] [--hold=0]
##
## Exit codes: 0 ok, 1 client check failed or the server cannot listen, 2 bad arguments.

const DEFAULT_PORT := 12077
const DEFAULT_MAX_PLAYERS := 8
## ENet cannot have more peers than this.
const ENET_PEER_LIMIT := 4095
const USAGE := "usage: godot --headless --path DIR -- --server [--port=12077] [--max-players=8] [--bind=ADDR] [--empty-server-timeout=S]\n" \
		+ "       godot --headless --path DIR -- --connect=HOST:PORT [--name=X] [--timeout=10] [--hold=0]"
const FLAGS := ["server", "help"]
const OPTIONS := ["port", "max-players", "bind", "empty-server-timeout", "connect", "name", "timeout", "hold"]

var version := str(ProjectSettings.get_setting("application/config/version"))
var is_client := false

## Set once the outcome is decided (client result printed, or exiting): later events are ignored.
var _finished := false
var _empty_timer: Timer

# Test client state.
var _player_name := "pilot"
var _hold := 0.0
var _got_ship := false
var _welcome: Array = []  # [player_count, server_version] once welcome() arrived


func _ready() -> void:
	var opts := _parse(OS.get_cmdline_user_args())
	if opts.has("help"):
		print(USAGE)
		get_tree().quit(0)
	elif opts.has("server") and opts.has("connect"):
		_bad_args("--server and --connect cannot be used together")
	elif opts.has("connect"):
		_start_client(opts)
	elif opts.has("server") or OS.has_feature("dedicated_server"):
		_start_server(opts)
	else:
		_bad_args("choose a mode: --server or --connect=HOST:PORT")


# --- server ---------------------------------------------------------------------------------------------

func _start_server(opts: Dictionary) -> void:
	var port := _number(opts, "port", DEFAULT_PORT, 1, 65535, true)
	var max_players := _number(opts, "max-players", DEFAULT_MAX_PLAYERS, 1, ENET_PEER_LIMIT, true)
	var idle := _number(opts, "empty-server-timeout", 0, 0, INF, false)
	if is_nan(port) or is_nan(max_players) or is_nan(idle):
		return
	var bind := str(opts.get("bind", "*"))
	if bind != "*" and not bind.is_valid_ip_address():
		_bad_args("--bind must be an IP address or *, got '%s'" % bind)
		return

	var peer := ENetMultiplayerPeer.new()
	if bind != "*":
		peer.set_bind_ip(bind)
	var err := peer.create_server(int(port), int(max_players))
	if err != OK:
		printerr("BEACON_SERVER_ERROR cannot listen on UDP %s:%d: %s" % [bind, port, error_string(err)])
		_finish(1)
		return
	multiplayer.multiplayer_peer = peer
	multiplayer.peer_connected.connect(_on_peer_connected)
	multiplayer.peer_disconnected.connect(_on_peer_disconnected)

	if idle > 0:
		_empty_timer = Timer.new()
		_empty_timer.one_shot = true
		_empty_timer.wait_time = idle
		_empty_timer.timeout.connect(_on_empty_timeout)
		add_child(_empty_timer)
		_empty_timer.start()
	print("BEACON_SERVER_LISTENING port=%d max_players=%d" % [port, max_players])


func _on_peer_connected(id: int) -> void:
	print("BEACON_PEER_JOINED id=%d players=%d" % [id, multiplayer.get_peers().size()])
	if _empty_timer:
		_empty_timer.stop()


func _on_peer_disconnected(id: int) -> void:
	var players := multiplayer.get_peers().size()
	print("BEACON_PEER_LEFT id=%d players=%d" % [id, players])
	if _empty_timer and players == 0:
		_empty_timer.start()


func _on_empty_timeout() -> void:
	print("BEACON_SERVER_EMPTY no players for %s s, exiting" % _empty_timer.wait_time)
	_finish(0)


@rpc("any_peer", "call_remote", "reliable")
func hello(player_name: String) -> void:
	if not multiplayer.is_server():
		return
	var id := multiplayer.get_remote_sender_id()
	print("BEACON_HELLO id=%d name=%s" % [id, player_name.left(32)])
	welcome.rpc_id(id, multiplayer.get_peers().size(), version)


# --- headless test client --------------------------------------------------------------------------------

func _start_client(opts: Dictionary) -> void:
	var address := str(opts["connect"])
	var colon := address.rfind(":")
	var host := address.left(colon) if colon > 0 else ""
	var port_text := address.substr(colon + 1) if colon > 0 else ""
	if host == "" or not port_text.is_valid_int() or not (int(port_text) >= 1 and int(port_text) <= 65535):
		_bad_args("--connect must be HOST:PORT with a port from 1 to 65535, got '%s'" % address)
		return
	var timeout := _number(opts, "timeout", 10, 0.1, INF, false)
	_hold = _number(opts, "hold", 0, 0, INF, false)
	_player_name = str(opts.get("name", _player_name))
	if is_nan(timeout) or is_nan(_hold):
		return

	is_client = true
	var peer := ENetMultiplayerPeer.new()
	var err := peer.create_client(host, int(port_text))
	if err != OK:
		_fail("cannot create client for %s: %s" % [address, error_string(err)])
		return
	multiplayer.multiplayer_peer = peer
	multiplayer.connected_to_server.connect(_on_connected)
	multiplayer.connection_failed.connect(_fail.bind("connection failed"))
	multiplayer.server_disconnected.connect(_fail.bind("server disconnected"))
	get_tree().create_timer(timeout).timeout.connect(_on_client_timeout.bind(timeout))


func _on_connected() -> void:
	hello.rpc_id(1, _player_name)


@rpc("authority", "call_remote", "reliable")
func welcome(player_count: int, server_version: String) -> void:
	_welcome = [player_count, server_version]
	_maybe_succeed()


## Called by every ship when it enters the scene; the client waits for the one named after itself.
func ship_arrived(ship: Node) -> void:
	if is_client and ship.name == str(multiplayer.get_unique_id()):
		_got_ship = true
		_maybe_succeed()


func _maybe_succeed() -> void:
	if _finished or not _got_ship or _welcome.is_empty():
		return
	_finished = true
	print("BEACON_CLIENT_OK players=%d version=%s" % _welcome)
	if _hold > 0:
		await get_tree().create_timer(_hold).timeout
	_finish(0)


func _on_client_timeout(seconds: float) -> void:
	_fail("timeout after %s s (welcome=%s, own ship=%s)" % [seconds, not _welcome.is_empty(), _got_ship])


func _fail(reason: String) -> void:
	if _finished:
		return
	_finished = true
	print("BEACON_CLIENT_FAIL %s" % reason)
	_finish(1)


# --- arguments and exit ---------------------------------------------------------------------------------

## "--flag" and "--key=value" -> {key: value}; anything else is ignored with a warning.
func _parse(args: PackedStringArray) -> Dictionary:
	var opts := {}
	for arg: String in args:
		var key := arg.trim_prefix("--").get_slice("=", 0)
		var has_value := arg.contains("=")
		if arg.begins_with("--") and key in FLAGS and not has_value:
			opts[key] = true
		elif arg.begins_with("--") and key in OPTIONS and has_value:
			opts[key] = arg.substr(arg.find("=") + 1)
		elif arg.begins_with("--") and key in OPTIONS:
			opts[key] = ""  # "--port" without "=N": rejected as invalid below
		else:
			printerr("BEACON_WARNING ignoring unknown argument '%s'" % arg)
	return opts


## Reads a numeric option in [lo, hi]; returns NAN (and exits with code 2) when it is not one.
func _number(opts: Dictionary, key: String, default: float, lo: float, hi: float, whole: bool) -> float:
	if not opts.has(key):
		return default
	var text := str(opts[key])
	var ok := text.is_valid_int() if whole else text.is_valid_float()
	if ok and text.to_float() >= lo and text.to_float() <= hi:
		return text.to_float()
	var wanted := "an integer from %d to %d" % [lo, hi] if whole else "a number >= %s" % lo
	_bad_args("--%s must be %s, got '%s'" % [key, wanted, text])
	return NAN


func _bad_args(message: String) -> void:
	if _finished:
		return
	printerr("BEACON_ARGS_ERROR %s\n%s" % [message, USAGE])
	_finished = true
	get_tree().quit(2)


func _finish(code: int) -> void:
	_finished = true
	if multiplayer.multiplayer_peer is ENetMultiplayerPeer:
		multiplayer.multiplayer_peer.close()  # tell the other side now rather than letting it time out
	get_tree().quit(code)
