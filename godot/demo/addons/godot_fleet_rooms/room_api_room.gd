class_name RoomApiRoom
extends RefCounted
## One room as the godot-fleet room API reports it (the `Room` object of the HTTP contract).

# The add-on's scripts refer to each other through preload(), not through their global class names, so they
# also work where Godot has not registered the class names (a project run with --path before any import).
const _Self := preload("room_api_room.gd")

## Unique room name (3-32 characters: a-z, 0-9 and hyphens).
var name: String = ""
## Address clients connect to; "" while the runtime has not reported one yet (status "starting").
var ip: String = ""
## UDP port of the room's ENet server.
var port: int = 0
## "starting", "running" or "stopping".
var status: String = ""
## Game build the room runs.
var build_version: String = ""
## ISO 8601 UTC, e.g. "2026-11-21T10:00:00Z".
var created_at: String = ""


## Builds a room from the API's JSON object; null when a required field is missing or has the wrong type.
static func from_dict(data: Variant) -> _Self:
	if not data is Dictionary:
		return null
	var d: Dictionary = data
	var room_name: Variant = d.get("name")
	var room_port: Variant = d.get("port")
	var room_status: Variant = d.get("status")
	if not room_name is String or not (room_port is float or room_port is int) or not room_status is String:
		return null
	var room := _Self.new()
	room.name = room_name
	room.port = int(room_port)
	room.status = room_status
	var room_ip: Variant = d.get("ip")
	room.ip = room_ip if room_ip is String else ""
	var version: Variant = d.get("build_version")
	room.build_version = version if version is String else ""
	var created: Variant = d.get("created_at")
	room.created_at = created if created is String else ""
	return room


## True when clients can join: the room runs and has an address.
func is_joinable() -> bool:
	return status == "running" and ip != "" and port > 0


## "ip:port" ("[ip]:port" for IPv6), or "" without an address.
func address() -> String:
	if ip == "":
		return ""
	return ("[%s]:%d" if ip.contains(":") else "%s:%d") % [ip, port]


func to_dict() -> Dictionary:
	return {
		"name": name,
		"ip": ip if ip != "" else null,
		"port": port,
		"status": status,
		"build_version": build_version,
		"created_at": created_at,
	}


func _to_string() -> String:
	return "RoomApiRoom(%s %s %s)" % [name, status, address() if ip != "" else "no address"]
