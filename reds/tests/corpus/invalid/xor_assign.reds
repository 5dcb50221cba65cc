// refused: `^=` is not an operator
public func F(a: Int32) -> Int32 {
  a ^= 2;
  return a;
}
