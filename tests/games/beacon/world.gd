extends Node2D
## The only scene: a beacon in the middle and one ship per connected player around it.
## The server adds and removes ships; the ShipSpawner replicates that to every client.

const SHIP_SCENE := preload("res://ship.tscn")
const CENTER := Vector2(480, 300)
const ORBIT := 160.0

@onready var ships: Node2D = $Ships
@onready var spawner: MultiplayerSpawner = $ShipSpawner


func _ready() -> void:
	# A ship's Sync node belongs to its pilot, so the server's spawn message cannot carry the start
	# position as synced state: it goes in the spawn data, which every peer turns into a ship here.
	spawner.spawn_function = _make_ship
	multiplayer.peer_connected.connect(_add_ship)
	multiplayer.peer_disconnected.connect(_remove_ship)


func _make_ship(data: Array) -> Node:
	var ship := SHIP_SCENE.instantiate() as Node2D
	ship.name = str(data[0])  # the peer id: ship.gd gives that peer authority over the ship
	ship.position = data[1]
	return ship


func _add_ship(peer_id: int) -> void:
	if not multiplayer.is_server():
		return  # clients also hear about other peers; only the server owns the ship list
	spawner.spawn([peer_id, CENTER + Vector2.RIGHT.rotated(ships.get_child_count() * 1.1) * ORBIT])


func _remove_ship(peer_id: int) -> void:
	var ship := ships.get_node_or_null(str(peer_id)) as Node2D
	if multiplayer.is_server() and ship:
		# Where the pilot last flew it: proof that the Sync node replicated its moves to the server.
		print("BEACON_SHIP_REMOVED id=%d position=%s" % [peer_id, ship.position.round()])
		ship.queue_free()  # the spawner despawns it on the clients
