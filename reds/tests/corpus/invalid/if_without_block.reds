// refused: `if` needs a block
public func F(x: Bool) -> Int32 {
  if x return 1;
  return 2;
}
