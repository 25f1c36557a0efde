extends Node2D
## A player's ship, named after the peer id of its pilot. The pilot's game moves it (it circles the beacon);
## the Sync node replicates its position to the server and the other players.

const TURN_SPEED := 0.8  # radians per second around the beacon
const CENTER := Vector2(480, 300)


func _enter_tree() -> void:
	set_multiplayer_authority(name.to_int())


func _ready() -> void:
	Net.ship_arrived(self)


func _physics_process(delta: float) -> void:
	if is_multiplayer_authority() and not multiplayer.is_server():
		position = CENTER + (position - CENTER).rotated(TURN_SPEED * delta)
		rotation = (position - CENTER).angle() + PI
