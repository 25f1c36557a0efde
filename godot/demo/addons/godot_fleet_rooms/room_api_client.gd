class_name RoomApiClient
extends Node
## Client of the godot-fleet room API (rooms on demand): create, list, find and stop rooms over HTTP, and join
## a room over ENet. Add it to the scene tree (it sends its requests through HTTPRequest children), set
## base_url / api_key, then await its methods; every call returns a RoomApiResult and never raises:
##
##     var client := RoomApiClient.new()
##     client.base_url = "https://rooms.example.com"
##     client.api_key = key  # sent as "Authorization: Bearer <key>", never printed
##     add_child(client)
##     var result := await client.create_room("my-room")
##     if not result.ok:
##         push_warning("create failed: %s (%s)" % [result.error, result.message])
##
## Calls are independent (one HTTPRequest each), so several may run at the same time.

## The add-on's classes, for code that cannot rely on the global class names (see room_api_room.gd):
## RoomApiClient.Result is RoomApiResult, RoomApiClient.Room is RoomApiRoom.
const Result := preload("room_api_result.gd")
const Room := preload("room_api_room.gd")
## Answers larger than this are refused (a full page of 100 rooms is about 20 KiB).
const MAX_BODY_BYTES := 1024 * 1024
## list_all_rooms never reads more pages than this.
const MAX_PAGES := 100

## Base address of the room API, e.g. "http://127.0.0.1:15000" or "https://abc.execute-api.eu-west-1.amazonaws.com".
@export var base_url: String = ""
## Seconds one HTTP request may take in total (connect + answer); 0 waits forever.
@export var timeout: float = 10.0
## The API key (sent as a Bearer token). Not exported on purpose: a key saved into a scene ends up in the game
## files. A key shipped inside a game client is not a secret; see README.md.
var api_key: String = ""


## GET /health (no key needed). result.data = {"status": "ok", "backend": "local"|"aws", "build_version": ...}.
func health() -> Result:
	return await _call(HTTPClient.METHOD_GET, "/health", null)


## POST /create_server. An empty name lets the API pick a free random one (room-xxxxxxxx). result.room is the
## new room, usually with status "starting": use wait_until_joinable() before join().
## Errors: invalid_name, name_taken (409), capacity (429), start_failed (503), unauthorized (401).
func create_room(room_name: String = "") -> Result:
	var body := {} if room_name == "" else {"name": room_name}
	var result := await _call(HTTPClient.METHOD_POST, "/create_server", body)
	return _with_room(result)


## GET /get_servers: one page of rooms, oldest first. Pass result.next_page_token to get the next page
## ("" on the last page). limit: 1..100 rooms per page, 0 for the API's default (50).
func list_rooms(page_token: String = "", limit: int = 0) -> Result:
	var query: PackedStringArray = []
	if limit > 0:
		query.append("limit=%d" % limit)
	if page_token != "":
		query.append("page_token=" + page_token.uri_encode())
	var path := "/get_servers"
	if not query.is_empty():
		path += "?" + "&".join(query)
	return _with_rooms(await _call(HTTPClient.METHOD_GET, path, null))


## Every page of GET /get_servers (at most MAX_PAGES) in one result.
func list_all_rooms(limit: int = 0) -> Result:
	var all_rooms: Array[Room] = []
	var token := ""
	for _page: int in MAX_PAGES:
		var result := await list_rooms(token, limit)
		if not result.ok:
			return result
		all_rooms.append_array(result.rooms)
		token = result.next_page_token
		if token == "":
			result.rooms = all_rooms
			return result
	return Result.failure(0, "bad_response", "more than %d pages of rooms" % MAX_PAGES)


## GET /get_servers?name=...: result.room is the room, or null (with result.ok true) when there is none.
func find_room(room_name: String) -> Result:
	var result := _with_rooms(await _call(HTTPClient.METHOD_GET, "/get_servers?name=" + room_name.uri_encode(), null))
	if result.ok:
		for room: Room in result.rooms:
			if room.name == room_name:
				result.room = room
	return result


## POST /stop_server: asks the runtime to stop the room; result.room has status "stopping". The room leaves the
## list once it has stopped. Errors: not_found (404), invalid_name, unauthorized.
func stop_room(room_name: String) -> Result:
	return _with_room(await _call(HTTPClient.METHOD_POST, "/stop_server", {"name": room_name}))


## Polls find_room every poll_interval seconds until the room is running with an address (result.room), the
## room disappears (error "not_found": it failed to start or was stopped) or max_wait seconds pass ("timeout").
func wait_until_joinable(room_name: String, max_wait: float = 60.0, poll_interval: float = 1.0) -> Result:
	var deadline := Time.get_ticks_msec() + int(max_wait * 1000.0)
	var result := await find_room(room_name)
	while result.ok and result.room != null and not result.room.is_joinable():
		if Time.get_ticks_msec() + int(poll_interval * 1000.0) > deadline:
			return Result.failure(0, "timeout", "room '%s' not joinable after %.0f s (status %s)" % [room_name, max_wait, result.room.status])
		await get_tree().create_timer(poll_interval).timeout
		result = await find_room(room_name)
	if result.ok and result.room == null:
		return Result.failure(result.status, "not_found", "room '%s' is gone (it failed to start or was stopped)" % room_name)
	return result


## Connects this scene tree's multiplayer to the room over ENet (ENetMultiplayerPeer client) and makes it the
## multiplayer peer. Returns OK when the connection attempt started; watch multiplayer.connected_to_server /
## connection_failed for the outcome. ERR_UNCONFIGURED when the room has no address yet.
func join(room: Room) -> Error:
	if room == null or room.ip == "" or room.port < 1 or room.port > 65535:
		return ERR_UNCONFIGURED
	var peer := ENetMultiplayerPeer.new()
	var err := peer.create_client(room.ip, room.port)
	if err != OK:
		return err
	multiplayer.multiplayer_peer = peer
	return OK


## Disconnects from the room (tells the server at once) and goes back to offline multiplayer.
func leave() -> void:
	var peer := multiplayer.multiplayer_peer
	if peer != null and not peer is OfflineMultiplayerPeer:
		peer.close()
	multiplayer.multiplayer_peer = OfflineMultiplayerPeer.new()


# --- internals -----------------------------------------------------------------------------------------------

func _with_room(result: Result) -> Result:
	if not result.ok:
		return result
	var room := Room.from_dict(result.data.get("room"))
	if room == null:
		return Result.failure(result.status, "bad_response", "the answer has no valid 'room' object", result.data)
	result.room = room
	return result


func _with_rooms(result: Result) -> Result:
	if not result.ok:
		return result
	var items: Variant = result.data.get("rooms")
	if not items is Array:
		return Result.failure(result.status, "bad_response", "the answer has no 'rooms' list", result.data)
	for item: Variant in items:
		var room := Room.from_dict(item)
		if room == null:
			return Result.failure(result.status, "bad_response", "the answer holds an invalid room", result.data)
		result.rooms.append(room)
	var token: Variant = result.data.get("next_page_token")
	result.next_page_token = token if token is String else ""
	return result


## One HTTP request; body null sends no body. Always returns a result (never raises, never prints the key).
func _call(method: HTTPClient.Method, path: String, body: Variant) -> Result:
	var base := base_url.strip_edges().trim_suffix("/")
	if not (base.begins_with("http://") or base.begins_with("https://")):
		return Result.failure(0, "bad_argument", "base_url must start with http:// or https:// (got '%s')" % base)
	for c: String in api_key:
		if c.unicode_at(0) < 0x21 or c.unicode_at(0) == 0x7f:
			return Result.failure(0, "bad_argument", "api_key contains spaces or control characters")
	if not is_inside_tree():
		return Result.failure(0, "not_in_tree", "add the RoomApiClient to the scene tree before calling it")
	var headers: PackedStringArray = ["Accept: application/json"]
	if api_key != "":
		headers.append("Authorization: Bearer " + api_key)
	var payload := ""
	if body != null:
		headers.append("Content-Type: application/json")
		payload = JSON.stringify(body)

	var http := HTTPRequest.new()
	http.timeout = timeout
	http.body_size_limit = MAX_BODY_BYTES
	http.accept_gzip = false
	add_child(http)
	var err := http.request(base + path, headers, method, payload)
	if err != OK:
		http.queue_free()
		return Result.failure(0, "request_failed", "cannot send the request to %s: %s" % [base + path, error_string(err)])
	var response: Array = await http.request_completed
	http.queue_free()

	var outcome: int = response[0]
	var code: int = response[1]
	var raw: PackedByteArray = response[3]
	if outcome != HTTPRequest.RESULT_SUCCESS:
		return _transport_failure(outcome, code, base)
	var text := raw.get_string_from_utf8()
	var json := JSON.new()
	var parsed: Variant = null
	if json.parse(text) == OK:
		parsed = json.data
	if code >= 200 and code < 300:
		if not parsed is Dictionary:
			return Result.failure(code, "bad_response", "HTTP %d with a body that is not a JSON object: %s" % [code, _snippet(text)])
		return Result.success(code, parsed)
	# An error answer: the API's {"error": code, "message": text}, or something else (a proxy, a gateway).
	if parsed is Dictionary:
		var d: Dictionary = parsed
		var api_error: Variant = d.get("error")
		var api_message: Variant = d.get("message")
		if api_error is String and api_error != "":
			return Result.failure(code, api_error, str(api_message) if api_message != null else "", d)
		if api_message is String:
			return Result.failure(code, "http_%d" % code, api_message, d)
	return Result.failure(code, "http_%d" % code, "HTTP %d: %s" % [code, _snippet(text)])


func _transport_failure(outcome: int, code: int, base: String) -> Result:
	match outcome:
		HTTPRequest.RESULT_TIMEOUT:
			return Result.failure(code, "timeout", "no complete answer from %s within %.1f s" % [base, timeout])
		HTTPRequest.RESULT_CANT_CONNECT:
			return Result.failure(code, "cant_connect", "cannot connect to %s" % base)
		HTTPRequest.RESULT_CANT_RESOLVE:
			return Result.failure(code, "cant_resolve", "cannot resolve the host of %s" % base)
		HTTPRequest.RESULT_CONNECTION_ERROR:
			return Result.failure(code, "connection_error", "the connection to %s broke" % base)
		HTTPRequest.RESULT_TLS_HANDSHAKE_ERROR:
			return Result.failure(code, "tls_error", "TLS handshake with %s failed" % base)
		HTTPRequest.RESULT_NO_RESPONSE:
			return Result.failure(code, "no_response", "%s closed the connection without an answer" % base)
		HTTPRequest.RESULT_BODY_SIZE_LIMIT_EXCEEDED:
			return Result.failure(code, "body_too_large", "the answer of %s exceeds %d bytes" % [base, MAX_BODY_BYTES])
	return Result.failure(code, "request_failed", "request to %s failed (HTTPRequest result %d)" % [base, outcome])


static func _snippet(text: String) -> String:
	var flat := text.strip_edges().replace("\n", " ")
	return flat if flat.length() <= 200 else flat.substr(0, 200) + "..."
