import Codeware.*

@if(ModuleExists("Codeware"))
public func OnlyWithCodeware() -> Bool { return true; }

@wrapMethod(PlayerPuppet)
protected cb func OnGameAttached() -> Bool {
  let r = wrappedMethod();
  this.m_myFlag = true;
  return r;
}

@addField(PlayerPuppet)
public let m_myFlag: Bool;

@addMethod(PlayerPuppet)
public func MyHelper(ids: array<TweakDBID>) -> script_ref<String> {
  let id = t"Items.Preset_Katana_Default";
  let res = r"base\\gameplay\\gui\\common.inkwidget";
  let nm = n"Name";
  let text = "tab\tquote\"backslash\\unicode\u{263A}";
  return null;
}

@replaceMethod(inkGameController)
private final func Refresh(const data: array<ref<IScriptable>>, out count: Int32) -> Void {
  super.Refresh(data, count);
  count = Cast<Int32>(ArraySize(data));
  let f = Cast<Float>(count) / 2.0;
  let generic = this.m_items[count - 1].GetData().value;
}

public native func NativeThing(a: Int32) -> Bool;
public static native func NativeStatic() -> Void;
importonly class GameObject extends IScriptable {}
exec func MyConsoleCommand(gi: GameInstance) -> Void {
  {
    let nested = true;
  }
}
