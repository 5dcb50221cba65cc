// refused: unterminated string
public func F() -> String {
  return "open;
}
