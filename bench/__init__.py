"""The benchmarks of godot-fleet (bench/README.md), installed with the test bed (pyproject.toml) and run as modules:
`python -m bench.converge`, `python -m bench.aws`, ... (as files, `python -m bench.room_api` would put bench/ first
on sys.path, where bench/room_api.py and bench/azure.py stand in for the room_api package and the Azure SDK)."""
