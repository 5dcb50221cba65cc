// refused: no shift operators
public func F(a: Int32) -> Void {
  a <<= 1;
}
