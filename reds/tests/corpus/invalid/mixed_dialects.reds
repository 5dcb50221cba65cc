// refused: 1.0-only `[T]` and 0.5-only `.5` in one file
public func F(xs: [Float]) -> Float {
  return .5;
}
