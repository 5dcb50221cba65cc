// refused: `\u{}` needs digits
public func F() -> String {
  return "\u{}";
}
