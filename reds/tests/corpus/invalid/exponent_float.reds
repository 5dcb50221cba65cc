// refused: no exponent floats
public func F() -> Float {
  return 1e3;
}
