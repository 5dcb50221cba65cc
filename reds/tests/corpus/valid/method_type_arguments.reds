// dialect: 1.0
// Explicit type arguments on a method call (1.0).
public func Typed(v: ref<IScriptable>) -> Int32 {
  return v.Get<Int32>();
}
