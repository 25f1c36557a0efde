@tool
extends EditorPlugin
## Editor entry of the godot-fleet rooms add-on. The add-on's classes (RoomApiClient, RoomApiResult, RoomApiRoom)
## are global script classes: games use them whether or not this plugin is enabled in the editor.
