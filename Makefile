# godot-fleet — see README.md. Every target installs what it needs and caches what is slow to build.
SHELL := /bin/bash
.DEFAULT_GOAL := help
RUN := source scripts/env.sh &&

.PHONY: help bootstrap venv node images ee game room-image room-api collection changelog lint sanity unit molecule test demo demo-aws demo-azure demo-rooms demo-down bench clean awx

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

bootstrap: ## Install the system packages of bindep.txt (podman, iptables, catatonit, debootstrap, ...)
	@scripts/bootstrap.sh

venv: ## Create the project venv (.venv) from requirements-dev.txt
	@scripts/venv.sh

node: bootstrap ## Install the Node test tools (Azurite, the Blob emulator) into .cache/node
	@scripts/node.sh

images: bootstrap ## Build the Debian 12 / testing host images and the Godot image (cached by recipe)
	@scripts/images.sh

ee: bootstrap venv ## The AWX execution environment image (ansible-builder, execution-environment.yml) on a Debian base made here; cached by recipe
	@scripts/images.sh ee-base
	@scripts/ee.sh

game: venv images ## Build the demo game's release into dist/ with build-game.yml (nothing is rebuilt when unchanged)
	@scripts/build-game.sh

room-image: venv game ## Build the demo room image (rooms on demand) with build-room-image.yml (cached)
	@$(RUN) ansible-playbook build-room-image.yml -e @inventories/local/demo-room.yml

room-api: venv ## Build the room API's Lambda artifact (room_api/build_lambda.py) into the aws_rooms_api role (reproducible)
	@$(RUN) python room_api/build_lambda.py "$$GF_ROOM_API_ARTIFACT"

collection: venv ## Build the collection tarball into .cache/collection/ and install it there (a collections path)
	@scripts/collection.sh .cache/collection

changelog: venv ## Regenerate CHANGELOG.rst from changelogs/ (add a fragment to changelogs/fragments/, never edit it)
	@$(RUN) python scripts/changelog.py

lint: venv ## ansible-lint (production), yamllint, ruff, mypy
	@scripts/lint.sh

sanity: venv ## ansible-test sanity on the installed collection
	@scripts/ansible-test.sh sanity

unit: venv ## Unit tests: ansible-test units on the installed collection, then the repository's own (no containers)
	@scripts/ansible-test.sh units
	@$(RUN) pytest -q tests/unit --ignore=tests/unit/plugins

molecule: venv game ## Molecule: the host role on Debian 12 + testing with real Godot rooms and clients
	@$(RUN) pytest -q tests/integration/test_molecule.py

# make test runs the test modules side by side (pytest-xdist; --dist loadfile keeps a module and its fixtures on one
# worker; modules use distinct container names, ports and emulator instances; tests/conftest.py puts the longest first)
PYTEST_WORKERS ?= 3

test: bootstrap venv node images ee game room-image room-api lint sanity ## Everything: lint, sanity, unit, room API, Molecule, AWS (moto), Azure (ARM double + Azurite), the installed collection
	@scripts/images.sh host-bullseye
	@scripts/ansible-test.sh units
	@$(RUN) pytest -n $(PYTEST_WORKERS) --dist loadfile tests/integration tests/room_api tests/unit --ignore=tests/unit/plugins

demo: bootstrap venv images game ## Deploy the demo game to local systemd containers (2 rooms)
	@scripts/demo.sh up

demo-aws: bootstrap venv images game ## deploy-aws.yml against the local AWS (moto), the instance a local container
	@scripts/demo-aws.sh up

demo-azure: bootstrap venv node images game ## deploy-azure.yml against the local Azure (ARM double + Azurite), the VM a local container
	@scripts/demo-azure.sh up

demo-rooms: bootstrap venv images game ## The room API (local backend: rooms are podman containers here); prints ROOM_API_URL/KEY
	@scripts/demo-rooms.sh up

awx: bootstrap venv ## A real AWX on loopback from ../shared/awx (GF_AWX_SOURCES) for trying configure-awx.yml; prints CONTROLLER_HOST/USERNAME/PASSWORD
	@$(RUN) python -m testbed.awx up

demo-down: ## Remove everything make demo / demo-aws / demo-azure / demo-rooms created
	@scripts/demo-rooms.sh down
	@scripts/demo.sh down
	@scripts/demo-aws.sh down
	@scripts/demo-azure.sh down

bench: venv game room-image ## Benchmarks (figures printed and written to bench/results/)
	@$(RUN) python -m bench.converge && $(RUN) python -m bench.rooms
	@$(RUN) python -m bench.room_create && $(RUN) python -m bench.room_api

clean: demo-down ## Remove build outputs (keeps the venv and the images)
	rm -rf dist .cache/game
