// refused: unbalanced parenthesis
public func F() -> Int32 {
  return (1 + 2;
}
