// dialect: 0.5
// A float without a leading digit: only the 0.5.x lexer reads `.5`.
public func Half() -> Float {
  return .5;
}
