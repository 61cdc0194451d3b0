// Package game holds the rules of the demo shooter: its state as path
// values, the functions the client predicts and the authority runs, the
// helpers a program needs to draw the game, and bots.
package game
