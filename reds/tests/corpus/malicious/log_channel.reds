// expect: forbidden-function
public func Spam() -> Void {
  LogChannel(n"DEBUG", "writing to the game log file");
}
