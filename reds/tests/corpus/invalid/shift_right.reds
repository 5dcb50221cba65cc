// refused: no shift operators
public func F(a: Int32) -> Int32 {
  return a >> 2;
}
