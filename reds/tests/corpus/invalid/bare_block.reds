// refused: a block is not a statement
public func F() -> Int32 {
  {
    let a = 1;
  }
  return 0;
}
