// ClientPluginProxy.reds — the audited bridge between the shard client DLL
// and scripts pushed by a server. Shipped with the client; it is the ONLY
// script allowed to declare `native` functions (checked in proxy mode).
//
// Pushed scripts subclass ShardRpcHandler and register it with:
//     RegisterRpc(n"StatusUpdate", new MyHandler());
// The name must be a literal so the server can whitelist it statically.
module Shard.Proxy

// ---- Natives implemented by the client DLL (C ABI) -----------------------
// Each maps to one function of client-runtime/include/shard_client.h:
// ShardPollEvent -> shard_client_poll_event, ShardRegisterRpc ->
// shard_client_register_rpc, and so on (a test checks the two lists agree).
// The native loader itself calls create/connect/destroy.

// Next event as one JSON object, or "" when the queue is empty. RPC events
// look like {"event":"rpc","plugin_id":3,"plugin":"mobile_cc","name":"CcStatus","json":"{...}"};
// popups like {"event":"popup","text":"...","duration":5.0}.
public native func ShardPollEvent() -> String
// Lets RPC `name` of `plugin` through to the game ("" = whichever announced
// plugin whitelists that name); returns 0, or a negative error code.
public native func ShardRegisterRpc(plugin: String, name: String) -> Int32
public native func ShardSendPosition(x: Float, y: Float, z: Float, yaw: Float) -> Int32
public native func ShardSendChat(text: String) -> Int32
public native func ShardSendInteract(entityId: Int32, action: String) -> Int32
// Answers the pending {"event":"content_offer","needs_answer":true,...}:
// 1 accepts, 0 declines; add 2 to remember the answer for this server.
public native func ShardAnswerOffer(accept: Int32) -> Int32
// Sends upstream RPC `name` with a JSON object payload to `plugin` ("" =
// the one installed plugin whose checked scripts declare that name); the
// DLL refuses names the plugin's scripts do not send; 0 or a negative code.
public native func ShardSendRpc(plugin: String, name: String, json: String) -> Int32
// JSON through the DLL (serde_json), addressed by JSON Pointer ("/options/2").
// Readers return "" / 0.0 / false / -1 when there is nothing of that kind.
public native func ShardJsonGetString(json: String, pointer: String) -> String
public native func ShardJsonGetNumber(json: String, pointer: String) -> Float
public native func ShardJsonGetBool(json: String, pointer: String) -> Bool
public native func ShardJsonGetSize(json: String, pointer: String) -> Int32
// Builders return `object` ("" = a new one) with `key` set, for SendServerRpc.
public native func ShardJsonSetString(object: String, key: String, value: String) -> String
public native func ShardJsonSetNumber(object: String, key: String, value: Float) -> String
public native func ShardJsonSetBool(object: String, key: String, value: Bool) -> String
// Text of the last error reported by a native call.
public native func ShardLastError() -> String

// ---- Handler base class ---------------------------------------------------

public abstract class ShardRpcHandler extends IScriptable {
  // Called with the RPC payload JSON when the server invokes this RPC.
  public func OnRpc(json: String) -> Void {}
}

// ---- Callback table keyed by RPC name --------------------------------------
// (The DLL already matched the server's fn hash against the plugin's
// whitelist and this registration; events carry the RPC's name.)

// Lives in the scriptable-systems container so the table survives as long
// as the game session and is reachable from any script.
public class ShardRpcTable extends ScriptableSystem {
  private let m_names: array<String>;
  private let m_handlers: array<ref<ShardRpcHandler>>;
  private let m_popup: ref<ShardPopupHandler>;
  private let m_hud: wref<inkCanvas>;

  private func OnAttach() -> Void {
    // Builtin plugin 0: the default popup handler (needs no registration).
    this.m_popup = new ShardPopupHandler();
    // The runtime's generated glue (runtime_cache/glue/ShardEntryGlue.reds)
    // calls each installed plugin's checked entry points (`…Init()`); the
    // system attaches again after every script reload.
    ShardRunEntryPoints();
  }

  public static func Get() -> ref<ShardRpcTable> {
    let container = GameInstance.GetScriptableSystemsContainer(GetGameInstance());
    return container.Get(n"Shard.Proxy.ShardRpcTable") as ShardRpcTable;
  }

  public func Add(name: String, handler: ref<ShardRpcHandler>) -> Bool {
    if !IsDefined(handler) {
      return false;
    }
    if ShardRegisterRpc("", name) != 0 {
      LogChannel(n"Shard", "RPC registration refused: " + ShardLastError());
      return false;
    }
    let i = 0;
    while i < ArraySize(this.m_names) {
      if Equals(this.m_names[i], name) {
        this.m_handlers[i] = handler;
        return true;
      }
      i += 1;
    }
    ArrayPush(this.m_names, name);
    ArrayPush(this.m_handlers, handler);
    return true;
  }

  public func Dispatch(name: String, payload: String) -> Bool {
    let i = 0;
    while i < ArraySize(this.m_names) {
      if Equals(this.m_names[i], name) {
        this.m_handlers[i].OnRpc(payload);
        return true;
      }
      i += 1;
    }
    return false;
  }

  public func SetHud(root: ref<inkCanvas>) -> Void {
    this.m_hud = root;
  }

  public func GetHud() -> wref<inkCanvas> {
    return this.m_hud;
  }

  // Drains the DLL event queue; called by ShardPumpCallback every tick.
  public func Pump() -> Void {
    let budget = 64;
    let ev = ShardPollEvent();
    while NotEquals(ev, "") && budget > 0 {
      let kind = ShardJsonGetString(ev, "/event");
      if Equals(kind, "rpc") {
        this.Dispatch(ShardJsonGetString(ev, "/name"), ShardJsonGetString(ev, "/json"));
      } else if Equals(kind, "popup") {
        this.m_popup.OnRpc(ev);
      }
      budget -= 1;
      ev = ShardPollEvent();
    }
  }
}

// ---- Functions pushed scripts may call (see shard-reds policy) ------------

// Registers a handler for an RPC name declared by the pushed script.
public func RegisterRpc(name: CName, handler: ref<ShardRpcHandler>) -> Bool {
  return ShardRpcTable.Get().Add(NameToString(name), handler);
}

// Sends upstream RPC `name` (a literal in the pushed script, so the policy
// puts it on the plugin's upstream whitelist) with a JSON object payload.
public func SendServerRpc(name: CName, json: String) -> Bool {
  if ShardSendRpc("", NameToString(name), json) != 0 {
    LogChannel(n"Shard", "RPC not sent: " + ShardLastError());
    return false;
  }
  return true;
}

// Root canvas pushed UI attaches to (owned by the proxy's HUD hook).
public func ShardHudRoot() -> wref<inkCanvas> {
  return ShardRpcTable.Get().GetHud();
}

// ---- Builtin plugin 0: popup ----------------------------------------------

public class ShardPopupHandler extends ShardRpcHandler {
  private let m_text: ref<inkText>;

  // Payload: {"text": "...", "duration": 5.0}
  public func OnRpc(json: String) -> Void {
    let root = ShardHudRoot();
    if !IsDefined(root) {
      return;
    }
    if !IsDefined(this.m_text) {
      this.m_text = new inkText();
      this.m_text.SetName(n"ShardPopup");
      this.m_text.SetFontSize(42);
      this.m_text.SetAnchor(inkEAnchor.TopCenter);
      this.m_text.SetMargin(new inkMargin(0.0, 120.0, 0.0, 0.0));
      this.m_text.SetTintColor(new HDRColor(1.0, 0.9, 0.3, 1.0));
      this.m_text.Reparent(root);
    }
    this.m_text.SetText(ShardJsonGetString(json, "/text"));
    this.m_text.SetVisible(true);
    let duration = ShardJsonGetNumber(json, "/duration");
    if duration <= 0.0 {
      duration = 5.0;
    }
    let cb = new ShardHidePopupCallback();
    cb.widget = this.m_text;
    GameInstance.GetDelaySystem(GetGameInstance()).DelayCallback(cb, duration, false);
  }
}

public class ShardHidePopupCallback extends DelayCallback {
  public let widget: wref<inkText>;

  public func Call() -> Void {
    if IsDefined(this.widget) {
      this.widget.SetVisible(false);
    }
  }
}

// ---- Hook giving the proxy a HUD root and a per-frame pump ----------------

@wrapMethod(inkGameController)
protected cb func OnInitialize() -> Bool {
  let result = wrappedMethod();
  if this.IsA(n"gameuiRootHudGameController") {
    let canvas = new inkCanvas();
    canvas.SetName(n"ShardHud");
    canvas.SetAnchor(inkEAnchor.Fill);
    canvas.Reparent(this.GetRootCompoundWidget());
    ShardRpcTable.Get().SetHud(canvas);
  }
  return result;
}

// Re-arming delay callback: pumps the event queue every 50 ms.
public class ShardPumpCallback extends DelayCallback {
  public func Call() -> Void {
    ShardRpcTable.Get().Pump();
    ShardPumpCallback.Schedule();
  }

  public static func Schedule() -> Void {
    GameInstance.GetDelaySystem(GetGameInstance()).DelayCallback(new ShardPumpCallback(), 0.05, false);
  }
}

@wrapMethod(PlayerPuppet)
protected cb func OnGameAttached() -> Bool {
  let result = wrappedMethod();
  if this.IsControlledByLocalPeer() {
    ShardPumpCallback.Schedule();
  }
  return result;
}
