// refused: no space between `n` and the string
public func F() -> CName {
  return n "Name";
}
