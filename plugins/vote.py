"""vote: an admin opens a poll and every player votes with a click.

``/poll QUESTION | OPTION | OPTION…`` (admins only) opens a poll, replacing
any open one; ``/endpoll`` (admins only) closes it and announces the result.
Every player gets a panel with one button per option (``vote/client/
vote.reds``), driven by the downstream RPC ``PollState`` ``{"question",
"options", "counts"}``. A click sends the upstream RPC ``Vote``
``{"option": index}``; each player has one vote (voting again changes it),
and every change is pushed to everyone. A player who joins while a poll is
open gets it as soon as their client has installed this plugin's scripts.
The poll lives in ``game.state``, so it survives a hot reload.
"""

__plugin__ = {
    "name": "vote",
    "version": "1.0.0",
    "description": "Admin polls with a clickable panel on every client",
}

MAX_OPTIONS = 8
MAX_TEXT = 80


def current():
    """The open poll, or None."""
    return game.state.get("poll")


def payload(poll):
    """The PollState payload: question, options and one count per option."""
    counts = [0] * len(poll["options"])
    for choice in poll["votes"].values():
        counts[choice] += 1
    return {"question": poll["question"], "options": poll["options"], "counts": counts}


def push(poll, peers=None):
    """Sends the poll's state to `peers` (default: everyone)."""
    data = payload(poll)
    if peers is None:
        peers = [peer for peer, _ in game.get_peer_positions()]
    for peer in peers:
        game.send_rpc(peer, "PollState", data)


@game.register_command("poll", "open a poll: /poll QUESTION | OPTION | OPTION...", admin=True)
def open_poll(peer, args):
    parts = [p.strip() for p in args.split("|")]
    if len(parts) < 3 or not all(parts):
        game.send_chat(peer, "usage: /poll QUESTION | OPTION | OPTION...")
        return
    if len(parts) - 1 > MAX_OPTIONS:
        game.send_chat(peer, f"at most {MAX_OPTIONS} options")
        return
    if any(len(p) > MAX_TEXT for p in parts):
        game.send_chat(peer, f"keep the question and options under {MAX_TEXT} characters")
        return
    poll = {"question": parts[0], "options": parts[1:], "votes": {}}
    game.state["poll"] = poll
    game.broadcast(f"Poll: {parts[0]}")
    push(poll)


@game.register_command("endpoll", "close the open poll and announce the result", admin=True)
def end_poll(peer, args):
    poll = game.state.pop("poll", None)
    if poll is None:
        game.send_chat(peer, "no poll is open")
        return
    counts = payload(poll)["counts"]
    result = ", ".join(f"{o}: {c}" for o, c in zip(poll["options"], counts))
    game.broadcast(f"Poll closed: {poll['question']} — {result}")


@game.on_rpc("Vote")
def vote(peer, data):
    poll = current()
    if poll is None:
        game.send_chat(peer, "no poll is open")
        return
    option = data.get("option")
    if isinstance(option, float) and option.is_integer():
        option = int(option)
    if not isinstance(option, int) or isinstance(option, bool) or not 0 <= option < len(poll["options"]):
        game.send_chat(peer, "that is not one of the poll's options")
        return
    poll["votes"][peer] = option
    push(poll)


@game.on("OnBundleInstalled")
def late_joiner(ev):
    # The client has this plugin's scripts (and its PollState handler) now.
    poll = current()
    if poll is not None and ev["ok"] and ev["plugin"] == "vote":
        push(poll, [ev["peer"]])


@game.on("OnPeerLeave")
def left(ev):
    poll = current()
    if poll is not None and poll["votes"].pop(ev["peer"], None) is not None:
        push(poll)
