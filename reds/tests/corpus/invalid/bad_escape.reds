// refused: unknown escape
public func F() -> String {
  return "a\qb";
}
