// refused: no `f` suffix on floats
public func F() -> Float {
  return 1.5f;
}
