// expect: forbidden-modifier
exec func GiveMoney(gi: GameInstance, amount: String) -> Void {}
