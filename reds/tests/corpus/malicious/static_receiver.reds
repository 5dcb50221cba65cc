// expect: forbidden-class
public func Save() -> Void {
  GameInstance.GetSavegameSystem();
}
