// refused: `new` needs an argument list
public func F() -> ref<IScriptable> {
  return new IScriptable;
}
