// refused: no character literals
public func F() -> String {
  let c = 'a';
  return "";
}
