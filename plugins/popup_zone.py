"""popup_zone: greets every player who walks into the HexBar zone.

Each peer gets one popup per entry into the 2 m zone around (123, 456, 0),
not one per tick: who is inside is kept in ``game.state`` so it also survives
a hot reload of this file.
"""

__plugin__ = {"name": "popup_zone", "version": "1.0.0"}

ZONE = (123.0, 456.0, 0.0)
RADIUS = 2.0
TEXT = "Welcome to HexBar!"
SECONDS = 5.0

# Peers currently inside the zone (a set kept across reloads).
inside = game.state.setdefault("inside", set())


@game.on("OnTick")
def on_tick(dt):
    now = set()
    for peer, pos in game.get_peer_positions():
        if game.dist(pos, ZONE) <= RADIUS:
            now.add(peer)
            if peer not in inside:
                game.show_popup(peer, TEXT, SECONDS)
    inside.clear()
    inside.update(now)
