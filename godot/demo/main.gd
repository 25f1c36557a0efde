extends Node
## godot-fleet demo game. One scene, three modes (game arguments go after `--`):
##   --server [--port=12077] [--max-players=8] [--bind=*] [--empty-server-timeout=0]
##       dedicated server (also the default when running headless without --client)
##   --client --connect=HOST:PORT [--timeout=10]
##       headless test client: RPC round trip, RAW echo, own replicated character, movement seen by the server
##   --rooms-client --api=URL [--room=NAME] [--stop] [--timeout=60] [--http-timeout=10]
##       headless test of the room API through the godot_fleet_rooms add-on (API key in the environment variable
##       ROOM_API_KEY, or --key=KEY): health, create a room, find it in the list, wait until it is joinable, join
##       it and pass the --client checks, leave, then (--stop: stop it and) poll the list until the room is gone
##   (no mode, with a display)
##       small client: type "IP:port", press Join, move with the arrow keys
## Both `--key=value` and `--key value` are accepted.

const DEFAULT_PORT := 12077
const DEFAULT_MAX_PLAYERS := 8
const DEFAULT_BIND := "*"
const DEFAULT_CLIENT_TIMEOUT := 10.0
const DEFAULT_ROOMS_CLIENT_TIMEOUT := 60.0
const DEFAULT_HTTP_TIMEOUT := 10.0
## How often the rooms client polls the room list.
const ROOMS_POLL_SECONDS := 0.5
## ENet's limit on peers per host.
const MAX_PEERS := 4095
## Exit codes: 0 ok (also an idle server leaving after --empty-server-timeout), 1 test client failed,
## 2 bad arguments (a configuration error: do not restart), 3 cannot listen (port busy, bad bind address).
const EXIT_CLIENT_FAIL := 1
const EXIT_USAGE := 2
const EXIT_LISTEN := 3
## Largest RAW packet the server echoes.
const MAX_ECHO_BYTES := 1024
## How far the test client moves its character.
const TEST_MOVE := Vector2(24, 0)

const FLAGS: Array[String] = ["server", "client", "rooms-client", "stop", "help"]
const OPTIONS: Array[String] = [
	"port", "max-players", "bind", "empty-server-timeout", "connect", "timeout", "api", "key", "room", "http-timeout",
]
const USAGE := """usage: godot --headless --main-pack game.pck -- --server [--port=12077] [--max-players=8] [--bind=*] [--empty-server-timeout=SECONDS]
       godot --headless --main-pack game.pck -- --client --connect=HOST:PORT [--timeout=10]
       ROOM_API_KEY=... godot --headless --main-pack game.pck -- --rooms-client --api=URL [--room=NAME] [--stop] [--timeout=60] [--http-timeout=10]
       (game arguments go after '--'; '--key=value' and '--key value' are both accepted)"""

const PLAYER_SCENE: PackedScene = preload("res://player.tscn")
## The Join menu lives in its own scene, created only in menu mode: servers and test clients never build UI
## containers (Debian's 4.6.3 release template logs "Attempt to disconnect a nonexistent connection" for every
## Container child when it quits).
const MENU_SCENE_PATH := "res://menu.tscn"
## The room API client (godot_fleet_rooms add-on), through preload() rather than its global class name, so the game
## also runs from source before Godot has registered class names (godot --headless --path on a fresh checkout).
const RoomApi := preload("res://addons/godot_fleet_rooms/room_api_client.gd")

enum Mode { MENU, SERVER, TEST_CLIENT, ROOMS_CLIENT }

## The test client's checks passed (rooms client: time to leave the room).
signal round_trip_done

var mode := Mode.MENU
var version := str(ProjectSettings.get_setting("application/config/version", "0.0.0"))

# Server state.
var _empty_timeout_ms := 0
var _empty_since_ms := 0

# Test client state.
var _deadline_ms := 0
var _finished := false
var _nonce := 0
var _ping_sent_us := 0
var _rtt_ms := -1.0
var _server_version := ""
var _raw_echo_ok := false
var _raw_nonce := ""
var _moved_to: Variant = null
var _move_confirmed := false
var _next_ping_ms := 0
## The test client runs inside the rooms client: report the round trip instead of quitting.
var _in_rooms_flow := false

@onready var players: Node2D = $Players
@onready var spawner: MultiplayerSpawner = $PlayerSpawner
@onready var status: Label = $UI/Status
var menu: Control = null
var address_edit: LineEdit = null


func _ready() -> void:
	spawner.spawn_function = _spawn_player
	var scene_mp := multiplayer as SceneMultiplayer
	scene_mp.peer_packet.connect(_on_peer_packet)
	multiplayer.peer_connected.connect(_on_peer_connected)
	multiplayer.peer_disconnected.connect(_on_peer_disconnected)
	multiplayer.connected_to_server.connect(_on_connected_to_server)
	multiplayer.connection_failed.connect(_on_connection_failed)
	multiplayer.server_disconnected.connect(_on_server_disconnected)

	var opts := _parse_args(OS.get_cmdline_user_args())
	if opts.has("error"):
		_usage_error(str(opts["error"]))
		return
	if opts.has("help"):
		print(USAGE)
		_quit(0)
		return
	var chosen: PackedStringArray = []
	for flag: String in ["server", "client", "rooms-client"]:
		if opts.has(flag):
			chosen.append("--" + flag)
	if chosen.size() > 1:
		_usage_error("%s are mutually exclusive" % " and ".join(chosen))
		return
	var headless := DisplayServer.get_name() == "headless"
	if opts.has("client"):
		_start_test_client(opts)
	elif opts.has("rooms-client"):
		_run_rooms_client(opts)
	elif opts.has("server") or headless or OS.has_feature("dedicated_server"):
		_start_server(opts)
	else:
		_show_menu("Not connected. Type the server address and press Join.")


func _process(_delta: float) -> void:
	match mode:
		Mode.SERVER:
			if _empty_timeout_ms > 0 and multiplayer.get_peers().is_empty():
				if Time.get_ticks_msec() - _empty_since_ms >= _empty_timeout_ms:
					print("GODOT_FLEET_EMPTY_TIMEOUT no peers for %.1f s, exiting" % (_empty_timeout_ms / 1000.0))
					set_process(false)
					_quit(0)
		Mode.TEST_CLIENT:
			_test_client_step()


# --- arguments -------------------------------------------------------------------------------------------

## Returns {option: value} (flags map to true), or {"error": message}.
func _parse_args(args: PackedStringArray) -> Dictionary:
	var opts := {}
	var i := 0
	while i < args.size():
		var arg := args[i]
		i += 1
		if not arg.begins_with("--") or arg.length() < 3:
			return {"error": "unexpected argument '%s'" % arg}
		var key := arg.substr(2)
		var value: Variant = null
		var eq := key.find("=")
		if eq >= 0:
			value = key.substr(eq + 1)
			key = key.substr(0, eq)
		if key in FLAGS:
			if value != null:
				return {"error": "--%s takes no value" % key}
			opts[key] = true
		elif key in OPTIONS:
			if value == null:
				if i >= args.size() or args[i].begins_with("--"):
					return {"error": "--%s needs a value" % key}
				value = args[i]
				i += 1
			opts[key] = value
		else:
			return {"error": "unknown option --%s" % key}
	return opts


## Parses an integer option within [lo, hi]; returns null (after reporting) when invalid.
func _int_opt(opts: Dictionary, key: String, default: int, lo: int, hi: int) -> Variant:
	if not opts.has(key):
		return default
	var text := str(opts[key]).strip_edges()
	if not text.is_valid_int() or text.to_int() < lo or text.to_int() > hi:
		_usage_error("--%s must be an integer from %d to %d, got '%s'" % [key, lo, hi, text])
		return null
	return text.to_int()


func _float_opt(opts: Dictionary, key: String, default: float, lo: float) -> Variant:
	if not opts.has(key):
		return default
	var text := str(opts[key]).strip_edges()
	if not text.is_valid_float() or text.to_float() < lo or is_nan(text.to_float()) or is_inf(text.to_float()):
		_usage_error("--%s must be a number >= %s, got '%s'" % [key, lo, text])
		return null
	return text.to_float()


## "host:port", "[v6]:port" or "host" (default port) -> [host, port]; [] when invalid.
func _parse_address(text: String) -> Array:
	text = text.strip_edges()
	var host := text
	var port := DEFAULT_PORT
	if text.begins_with("["):
		var close := text.find("]")
		if close < 0:
			return []
		host = text.substr(1, close - 1)
		var rest := text.substr(close + 1)
		if rest != "":
			if not rest.begins_with(":"):
				return []
			rest = rest.substr(1)
			if not rest.is_valid_int():
				return []
			port = rest.to_int()
	elif text.count(":") == 1:
		host = text.get_slice(":", 0)
		var port_text := text.get_slice(":", 1)
		if not port_text.is_valid_int():
			return []
		port = port_text.to_int()
	if host == "" or port < 1 or port > 65535:
		return []
	return [host, port]


func _usage_error(message: String) -> void:
	printerr("GODOT_FLEET_USAGE_ERROR %s" % message)
	printerr(USAGE)
	_quit(EXIT_USAGE)


func _quit(code: int) -> void:
	if multiplayer.multiplayer_peer != null and not multiplayer.multiplayer_peer is OfflineMultiplayerPeer:
		# Tell the other side now instead of letting it time out.
		multiplayer.multiplayer_peer.close()
	get_tree().quit(code)


# --- server ------------------------------------------------------------------------------------------------

func _start_server(opts: Dictionary) -> void:
	var port: Variant = _int_opt(opts, "port", DEFAULT_PORT, 1, 65535)
	if port == null:
		return
	var max_players: Variant = _int_opt(opts, "max-players", DEFAULT_MAX_PLAYERS, 1, MAX_PEERS)
	if max_players == null:
		return
	var idle: Variant = _float_opt(opts, "empty-server-timeout", 0.0, 0.0)
	if idle == null:
		return
	var bind := str(opts.get("bind", DEFAULT_BIND)).strip_edges()
	if bind != "*" and not bind.is_valid_ip_address():
		_usage_error("--bind must be '*' or an IP address, got '%s'" % bind)
		return

	var peer := ENetMultiplayerPeer.new()
	if bind != "*":
		peer.set_bind_ip(bind)
	var err := peer.create_server(port, max_players)
	if err != OK:
		printerr("GODOT_FLEET_LISTEN_ERROR cannot listen on %s port %d (UDP): %s" % [bind, port, error_string(err)])
		_quit(EXIT_LISTEN)
		return
	multiplayer.multiplayer_peer = peer
	mode = Mode.SERVER
	_empty_timeout_ms = int(float(idle) * 1000.0)
	_empty_since_ms = Time.get_ticks_msec()
	status.text = "Dedicated server on port %d" % port
	print("GODOT_FLEET_READY port=%d max_players=%d bind=%s version=%s engine=%s" % [
		port, max_players, bind, version, Engine.get_version_info().string])


func _spawn_player(data: Variant) -> Node:
	var id := int(data)
	var player := PLAYER_SCENE.instantiate() as Node2D
	player.name = str(id)
	# Deterministic start position, so server and clients agree before the first sync.
	player.position = Vector2(120 + (id % 7) * 110, 120 + (id % 5) * 90)
	return player


func _on_peer_connected(id: int) -> void:
	if not multiplayer.is_server():
		return
	print("peer connected id=%d peers=%d" % [id, multiplayer.get_peers().size()])
	spawner.spawn(id)


func _on_peer_disconnected(id: int) -> void:
	if multiplayer.is_server():
		_empty_since_ms = Time.get_ticks_msec()
		print("peer disconnected id=%d peers=%d" % [id, multiplayer.get_peers().size()])
	var player := players.get_node_or_null(str(id))
	if player != null and multiplayer.is_server():
		player.queue_free()


## RPC round trip: any peer asks, the server answers the sender only.
@rpc("any_peer", "call_remote", "reliable")
func ping(nonce: int) -> void:
	if not multiplayer.is_server():
		return
	var sender := multiplayer.get_remote_sender_id()
	var player := players.get_node_or_null(str(sender)) as Node2D
	var info := {
		"version": version,
		"engine": Engine.get_version_info().string,
		"players": players.get_child_count(),
		"position": player.position if player != null else null,
	}
	rpc_id(sender, "pong", nonce, info)


@rpc("authority", "call_remote", "reliable")
func pong(nonce: int, info: Dictionary) -> void:
	if mode != Mode.TEST_CLIENT or nonce != _nonce:
		return
	if _rtt_ms < 0:
		_rtt_ms = (Time.get_ticks_usec() - _ping_sent_us) / 1000.0
		_server_version = str(info.get("version", "?"))
	var pos: Variant = info.get("position")
	if _moved_to != null and pos is Vector2 and (pos as Vector2).is_equal_approx(_moved_to):
		_move_confirmed = true


## RAW packets (SceneMultiplayer.send_bytes, or b"\x03" + data from a non-Godot ENet client such as a probe).
func _on_peer_packet(id: int, packet: PackedByteArray) -> void:
	if multiplayer.is_server():
		if packet.size() <= MAX_ECHO_BYTES:
			var reply := ("pong:" + packet.get_string_from_utf8()).to_utf8_buffer()
			(multiplayer as SceneMultiplayer).send_bytes(reply, id, MultiplayerPeer.TRANSFER_MODE_RELIABLE)
	elif mode == Mode.TEST_CLIENT and packet.get_string_from_utf8() == "pong:" + _raw_nonce:
		_raw_echo_ok = true


# --- clients -----------------------------------------------------------------------------------------------

## Connects to "host:port". Returns "" or an error message.
func _join(address: String) -> String:
	var parsed := _parse_address(address)
	if parsed.is_empty():
		return "bad server address '%s' (want IP:port)" % address
	var peer := ENetMultiplayerPeer.new()
	var err := peer.create_client(str(parsed[0]), int(parsed[1]))
	if err != OK:
		return "cannot connect to %s: %s" % [address, error_string(err)]
	multiplayer.multiplayer_peer = peer
	return ""


func _on_join_pressed() -> void:
	var err := _join(address_edit.text)
	if err != "":
		status.text = err
		return
	menu.hide()
	status.text = "Connecting to %s ..." % address_edit.text


func _on_connected_to_server() -> void:
	if mode == Mode.TEST_CLIENT:
		_nonce = randi_range(1, 0x7fffffff)
		_raw_nonce = "ping:%d" % _nonce
		_ping_sent_us = Time.get_ticks_usec()
		rpc_id(1, "ping", _nonce)
		(multiplayer as SceneMultiplayer).send_bytes(_raw_nonce.to_utf8_buffer(), 1, MultiplayerPeer.TRANSFER_MODE_RELIABLE)
	else:
		status.text = "Connected as peer %d. Arrow keys move your character." % multiplayer.get_unique_id()


func _on_connection_failed() -> void:
	if mode == Mode.ROOMS_CLIENT:
		return  # between the API steps: not connected to a room
	if mode == Mode.TEST_CLIENT:
		_fail("connection failed")
		return
	_back_to_menu("Connection failed.")


func _on_server_disconnected() -> void:
	if mode == Mode.ROOMS_CLIENT:
		return  # between the API steps: not connected to a room
	if mode == Mode.TEST_CLIENT:
		_fail("server disconnected")
		return
	_back_to_menu("Server disconnected.")


func _back_to_menu(message: String) -> void:
	multiplayer.multiplayer_peer = OfflineMultiplayerPeer.new()
	for child in players.get_children():
		child.queue_free()
	_show_menu(message)


func _show_menu(message: String) -> void:
	if menu == null:
		menu = (load(MENU_SCENE_PATH) as PackedScene).instantiate() as Control
		$UI.add_child(menu)
		address_edit = menu.get_node("VBox/Address") as LineEdit
		(menu.get_node("VBox/Join") as Button).pressed.connect(_on_join_pressed)
		address_edit.text_submitted.connect(func(_text: String) -> void: _on_join_pressed())
	status.text = message
	menu.show()
	address_edit.grab_focus()


func _start_test_client(opts: Dictionary) -> void:
	if not opts.has("connect"):
		_usage_error("--client needs --connect=HOST:PORT")
		return
	var timeout: Variant = _float_opt(opts, "timeout", DEFAULT_CLIENT_TIMEOUT, 0.001)
	if timeout == null:
		return
	if _parse_address(str(opts["connect"])).is_empty():
		_usage_error("--connect must be HOST:PORT, got '%s'" % opts["connect"])
		return
	mode = Mode.TEST_CLIENT
	_deadline_ms = Time.get_ticks_msec() + int(float(timeout) * 1000.0)
	var err := _join(str(opts["connect"]))
	if err != "":
		_fail(err)


func _test_client_step() -> void:
	if _finished:
		return
	var now := Time.get_ticks_msec()
	if now >= _deadline_ms:
		_fail("timeout waiting for " + _test_client_waiting_for())
		return
	if multiplayer.multiplayer_peer == null \
			or multiplayer.multiplayer_peer.get_connection_status() != MultiplayerPeer.CONNECTION_CONNECTED:
		return
	var me := players.get_node_or_null(str(multiplayer.get_unique_id())) as Node2D
	if me != null and _moved_to == null:
		if not me.is_multiplayer_authority():
			_fail("character %s is not under this peer's authority (authority=%d)" % [me.name, me.get_multiplayer_authority()])
			return
		_moved_to = me.position + TEST_MOVE
		me.position = _moved_to
	# After the first answer, keep asking until the server reports the moved position (synchronizer works).
	if _moved_to != null and _rtt_ms >= 0 and not _move_confirmed and now >= _next_ping_ms:
		_next_ping_ms = now + 50
		rpc_id(1, "ping", _nonce)
	if _rtt_ms >= 0 and _raw_echo_ok and _move_confirmed:
		_finished = true
		print("GODOT_FLEET_CLIENT_OK peer=%d rtt_ms=%.1f server_version=%s" % [multiplayer.get_unique_id(), _rtt_ms, _server_version])
		if _in_rooms_flow:
			round_trip_done.emit()
		else:
			_quit(0)


func _test_client_waiting_for() -> String:
	if multiplayer.multiplayer_peer == null \
			or multiplayer.multiplayer_peer.get_connection_status() != MultiplayerPeer.CONNECTION_CONNECTED:
		return "the connection"
	var missing: PackedStringArray = []
	if _rtt_ms < 0:
		missing.append("the RPC answer (pong)")
	if not _raw_echo_ok:
		missing.append("the RAW echo")
	if _moved_to == null:
		missing.append("our character %d to be spawned" % multiplayer.get_unique_id())
	elif not _move_confirmed:
		missing.append("the server to see our character move")
	return ", ".join(missing)


func _fail(reason: String) -> void:
	if _finished:
		return
	_finished = true
	printerr("GODOT_FLEET_CLIENT_FAIL %s" % reason)
	_quit(EXIT_CLIENT_FAIL)


# --- rooms client (room API through the godot_fleet_rooms add-on) -------------------------------------------

## health -> create -> listed -> joinable -> join + --client checks -> leave -> [stop] -> gone from the list.
## Prints one GODOT_FLEET_ROOMS_<STEP> line per step and GODOT_FLEET_ROOMS_CLIENT_OK at the end (exit 0), or
## GODOT_FLEET_ROOMS_FAIL step=... status=... error=... message=... (exit 1). Never prints the key.
func _run_rooms_client(opts: Dictionary) -> void:
	var api := str(opts.get("api", "")).strip_edges()
	if not (api.begins_with("http://") or api.begins_with("https://")):
		_usage_error("--rooms-client needs --api=http(s)://HOST:PORT, got '%s'" % api)
		return
	var timeout: Variant = _float_opt(opts, "timeout", DEFAULT_ROOMS_CLIENT_TIMEOUT, 0.001)
	if timeout == null:
		return
	var http_timeout: Variant = _float_opt(opts, "http-timeout", DEFAULT_HTTP_TIMEOUT, 0.001)
	if http_timeout == null:
		return
	var room_name := str(opts.get("room", ""))
	mode = Mode.ROOMS_CLIENT
	_in_rooms_flow = true
	_deadline_ms = Time.get_ticks_msec() + int(float(timeout) * 1000.0)
	var client := RoomApi.new()
	client.name = "RoomApiClient"
	client.base_url = api
	client.api_key = str(opts.get("key", OS.get_environment("ROOM_API_KEY")))
	client.timeout = float(http_timeout)
	add_child(client)

	var result := await client.health()
	if not result.ok:
		_rooms_fail("health", result)
		return
	print("GODOT_FLEET_ROOMS_HEALTH backend=%s build_version=%s" % [result.data.get("backend"), result.data.get("build_version")])

	result = await client.create_room(room_name)
	if not result.ok:
		_rooms_fail("create", result)
		return
	var room := result.room
	print("GODOT_FLEET_ROOMS_CREATED name=%s status=%s port=%d build_version=%s" % [room.name, room.status, room.port, room.build_version])

	result = await client.list_all_rooms()
	if not result.ok:
		_rooms_fail("list", result)
		return
	var listed := result.rooms.filter(func(r: RoomApi.Room) -> bool: return r.name == room.name)
	if listed.is_empty():
		_rooms_fail("list", RoomApi.Result.failure(result.status, "missing", "room %s is not in the list of %d rooms" % [room.name, result.rooms.size()]))
		return
	print("GODOT_FLEET_ROOMS_LISTED name=%s rooms=%d" % [room.name, result.rooms.size()])

	result = await client.wait_until_joinable(room.name, _seconds_left(), ROOMS_POLL_SECONDS)
	if not result.ok:
		_rooms_fail("wait", result)
		return
	room = result.room
	print("GODOT_FLEET_ROOMS_JOINABLE name=%s address=%s" % [room.name, room.address()])

	mode = Mode.TEST_CLIENT
	var err := client.join(room)
	if err != OK:
		_rooms_fail("join", RoomApi.Result.failure(0, "join_failed", "cannot connect to %s: %s" % [room.address(), error_string(err)]))
		return
	await round_trip_done
	mode = Mode.ROOMS_CLIENT
	client.leave()
	for child in players.get_children():
		child.queue_free()
	print("GODOT_FLEET_ROOMS_LEFT name=%s" % room.name)

	if opts.has("stop"):
		result = await client.stop_room(room.name)
		if not result.ok:
			_rooms_fail("stop", result)
			return
		print("GODOT_FLEET_ROOMS_STOPPING name=%s status=%s" % [room.name, result.room.status])

	# The room leaves the list once its server has exited (--stop, or its empty-server timeout).
	var left_ms := Time.get_ticks_msec()
	while true:
		result = await client.list_all_rooms()
		if not result.ok:
			_rooms_fail("gone", result)
			return
		if result.rooms.all(func(r: RoomApi.Room) -> bool: return r.name != room.name):
			break
		if _seconds_left() <= 0.0:
			_rooms_fail("gone", RoomApi.Result.failure(0, "timeout", "room %s still listed" % room.name))
			return
		await get_tree().create_timer(ROOMS_POLL_SECONDS).timeout
	print("GODOT_FLEET_ROOMS_GONE name=%s after_leave_s=%.1f" % [room.name, (Time.get_ticks_msec() - left_ms) / 1000.0])
	print("GODOT_FLEET_ROOMS_CLIENT_OK name=%s" % room.name)
	_quit(0)


func _seconds_left() -> float:
	return maxf(0.0, (_deadline_ms - Time.get_ticks_msec()) / 1000.0)


func _rooms_fail(step: String, result: RoomApi.Result) -> void:
	printerr("GODOT_FLEET_ROOMS_FAIL step=%s status=%d error=%s message=%s" % [step, result.status, result.error, result.message])
	_quit(EXIT_CLIENT_FAIL)
