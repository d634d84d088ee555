"""The driving game (Andreas, Dragan & Klein 2017): two cars, each sees only its own goal, must
cross an intersection without crashing and may talk at every step."""
