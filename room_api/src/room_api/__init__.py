"""godot-fleet room API: create, list and stop game rooms on demand (the rooms-on-demand path).

One set of HTTP handlers (`room_api.handlers`) over one backend interface (`room_api.backend.Backend`):
- `room_api.local`: rooms are podman containers on this host, registry in SQLite (the embedded default);
- `room_api.aws`: rooms are ECS Fargate tasks, registry in DynamoDB (deployed as Lambda behind API Gateway).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
