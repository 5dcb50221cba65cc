// expect: hook-annotation
@wrapMethod(PlayerPuppet)
protected cb func OnGameAttached() -> Bool {
  return wrappedMethod();
}
