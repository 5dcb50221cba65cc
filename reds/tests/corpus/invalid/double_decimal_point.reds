// refused: one decimal point
public func F() -> Float {
  return 1.2.3;
}
