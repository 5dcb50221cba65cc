// dialect: 0.5
// Number spellings only the 0.5.x lexer reads.
enum Wide {
  Large = 5000000000l,
  Small = 1
}

public func Legacy() -> Int32 {
  let padded = 007;
  let lowest = -2147483648;
  return padded + lowest;
}
