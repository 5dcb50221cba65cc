// refused: statements belong in functions
let x = 1;
