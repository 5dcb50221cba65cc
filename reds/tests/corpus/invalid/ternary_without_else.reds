// refused: `?` needs `:`
public func F(b: Bool) -> Int32 {
  return b ? 1;
}
