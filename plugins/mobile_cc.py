"""mobile_cc: a mobile command centre that admins park anywhere.

``/spawncc`` (admins only) parks the command centre beside the admin: the
TweakDB record ``Vehicle.shard_mobile_cc_commandcenter`` that
``mobile_cc/tweaks/commandcenter.yaml`` adds as a clone of a vanilla van
(the old name ``veh_commandcenter`` still works as an alias). A second
``/spawncc`` moves it rather than adding another. A player
who uses its door (``use:<vehicle id>:use_door`` in the headless client) is
teleported into the interior, a phase of its own, and gets the command
centre's status panel (the ``CcStatus`` RPC handled by
``mobile_cc/client/cc_status.reds``). Using the vehicle again with
``exit_interior`` puts them back beside it in phase 0.
"""

__plugin__ = {
    "name": "mobile_cc",
    "version": "1.0.0",
    "description": "Admin-spawned mobile command centre with an interior and a status panel",
}

# The vehicle's TweakDB record, added by tweaks/commandcenter.yaml.
TEMPLATE = "Vehicle.shard_mobile_cc_commandcenter"
# Where the interior sector sits (registered by assets/mobile_cc.archive.xl).
INTERIOR = (-1200.0, 300.0, 52.0)
# How far from the admin the vehicle is parked, and where an exiting player stands.
PARK_OFFSET = 4.0
EXIT_OFFSET = 3.0
# Each vehicle's interior is its own phase, so occupants only see each other.
PHASE_BASE = 1000

# admin peer -> vehicle entity id. A reload despawns the old version's
# vehicles, so these start empty with every version.
owned = {}
# peer -> vehicle id whose interior they are in.
inside = {}


def interior_phase(vehicle):
    """The phase of a vehicle's interior."""
    return PHASE_BASE + vehicle


def status(vehicle):
    """The payload of the CcStatus RPC for a vehicle."""
    crew = sum(1 for v in inside.values() if v == vehicle)
    return {"title": f"Command centre #{vehicle}", "alert": 0.0, "units": crew}


@game.register_command("spawncc", "park your mobile command centre beside you", admin=True)
def spawncc(peer, args):
    here = dict(game.get_peer_positions()).get(peer)
    if here is None:
        game.send_chat(peer, "your position is not known yet; move first")
        return
    old = owned.pop(peer, None)
    if old is not None and game.get_entity_position(old) is not None:
        game.despawn(old)
        for p in [p for p, v in inside.items() if v == old]:
            del inside[p]
    x, y, z = here
    vehicle = game.spawn_vehicle(TEMPLATE, (x + PARK_OFFSET, y, z), phase=0, rot=0.0)
    owned[peer] = vehicle
    game.send_chat(peer, f"command centre {vehicle} parked beside you")


@game.on("OnInteract")
def interact(ev):
    peer, vehicle, action = ev["peer"], ev["entity_id"], ev["action"]
    if vehicle not in owned.values():
        return
    if action == "use_door":
        inside[peer] = vehicle
        game.teleport_peer(peer, INTERIOR, 0.0, phase=interior_phase(vehicle))
        game.send_rpc(peer, "CcStatus", status(vehicle))
    elif action == "exit_interior" and inside.get(peer) == vehicle:
        del inside[peer]
        where = game.get_entity_position(vehicle)
        if where is None:
            return
        x, y, z = where
        game.teleport_peer(peer, (x - EXIT_OFFSET, y, z), 0.0, phase=0)


@game.on("OnPeerLeave")
def left(ev):
    inside.pop(ev["peer"], None)
