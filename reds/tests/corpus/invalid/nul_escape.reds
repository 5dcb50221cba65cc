// refused: `\0` is not an escape
public func F() -> String {
  return "a\0b";
}
