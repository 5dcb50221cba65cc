// refused: `else` needs a block or `if`
public func F(x: Bool) -> Int32 {
  if x {
    return 1;
  } else return 2;
}
