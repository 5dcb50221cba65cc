// refused: 2147483648 does not fit Int32
public func F() -> Int32 {
  return 2147483648;
}
