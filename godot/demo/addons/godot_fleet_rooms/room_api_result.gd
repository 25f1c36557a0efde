class_name RoomApiResult
extends RefCounted
## The outcome of one RoomApiClient call. Check `ok` first; on failure `error` is a short code and `message`
## says what went wrong. Codes from the API itself (see room_api/README.md): unauthorized, invalid_name,
## name_taken, capacity, start_failed, not_found, bad_limit, bad_page_token, ... Codes from the client
## (no usable answer from the API; `status` is 0 unless an HTTP status was received):
##   timeout, cant_connect, cant_resolve, connection_error, tls_error, no_response, body_too_large,
##   request_failed, not_in_tree, bad_argument, bad_response (the body is not the expected JSON),
##   http_<status> (an HTTP error without the API's {"error", "message"} body, e.g. from a proxy).

const _Self := preload("room_api_result.gd")
const Room := preload("room_api_room.gd")

## True when the API answered with a 2xx status and the expected body.
var ok: bool = false
## HTTP status code, 0 when no HTTP answer was received (timeout, connection refused, ...).
var status: int = 0
## "" on success, else the error code.
var error: String = ""
## "" on success, else a human-readable explanation (never contains the API key).
var message: String = ""
## create_room, find_room (null when there is no such room), stop_room, wait_until_joinable.
var room: Room = null
## list_rooms / list_all_rooms.
var rooms: Array[Room] = []
## list_rooms: pass it to the next list_rooms call; "" on the last page.
var next_page_token: String = ""
## The parsed JSON body (e.g. health(): {"status": "ok", "backend": ..., "build_version": ...}).
var data: Dictionary = {}


static func success(http_status: int, body: Dictionary) -> _Self:
	var result := _Self.new()
	result.ok = true
	result.status = http_status
	result.data = body
	return result


static func failure(http_status: int, code: String, text: String, body: Dictionary = {}) -> _Self:
	var result := _Self.new()
	result.ok = false
	result.status = http_status
	result.error = code
	result.message = text
	result.data = body
	return result


func _to_string() -> String:
	if ok:
		return "RoomApiResult(ok status=%d)" % status
	return "RoomApiResult(error status=%d %s: %s)" % [status, error, message]
