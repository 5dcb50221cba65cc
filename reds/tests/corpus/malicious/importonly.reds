// expect: forbidden-modifier
importonly class PlayerPuppet extends IScriptable {}
