extends Node2D
## A player character. The server spawns one per connected peer (named after the peer id) through the
## MultiplayerSpawner; its MultiplayerSynchronizer replicates position and body rotation from the owning
## peer, which is the only one that simulates (moves) it.

const SPEED := 240.0


func _enter_tree() -> void:
	# The name is the peer id: that peer owns the character and its synchronizer.
	set_multiplayer_authority(name.to_int())


func _ready() -> void:
	var id := name.to_int()
	($NameLabel as Label).text = name
	($Body as Polygon2D).color = Color.from_hsv(fmod(float(id % 997) * 0.618034, 1.0), 0.6, 0.95)


func _physics_process(delta: float) -> void:
	if not is_multiplayer_authority():
		return
	var direction := Input.get_vector("ui_left", "ui_right", "ui_up", "ui_down")
	if direction == Vector2.ZERO:
		return
	var area := get_viewport_rect().size
	position = (position + direction * SPEED * delta).clamp(Vector2.ZERO, area)
	($Body as Polygon2D).rotation = direction.angle()
