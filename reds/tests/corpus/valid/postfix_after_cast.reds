// dialect: 0.5
// In 0.5.x `as` is a postfix operator, so member calls may follow it.
public func CastCall(v: ref<IScriptable>) -> Bool {
  return v as PlayerPuppet.IsPlayer();
}
