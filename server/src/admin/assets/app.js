// shard admin console: live updates over Server-Sent Events. The server
// renders each page's live part; this script swaps it in, but never while
// keyboard focus is inside it (so typing a kick reason is not disturbed):
// the newest update waits until focus leaves.
(function () {
  "use strict";
  const live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) return;
  let pending = null;
  let shown = null;
  function busy() {
    const a = document.activeElement;
    return a && a !== document.body && live.contains(a);
  }
  function apply() {
    if (pending === null || busy()) return;
    if (pending !== shown) live.innerHTML = pending;
    shown = pending;
    pending = null;
  }
  live.addEventListener("focusout", function () { setTimeout(apply, 0); });
  const events = new EventSource("/events/" + encodeURIComponent(live.dataset.live));
  events.addEventListener("update", function (e) {
    try { pending = JSON.parse(e.data).html; } catch (_) { return; }
    apply();
  });
  events.addEventListener("logout", function () { events.close(); window.location = "/login"; });
})();
