// refused: unterminated block comment
/* never closed
public func F() -> Void {}
