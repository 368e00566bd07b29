// An Express app with Passport's local strategy and express-session, as Passport's own guide
// writes it: POST /login/password with `username` and `password`, failureRedirect back to the
// login page, successRedirect to /, the session in `connect.sid`. One account: alice / right-pw.
//
//   node passport.js      prints "passport app listening on http://127.0.0.1:PORT"
'use strict';

const express = require('express');
const session = require('express-session');
const passport = require('passport');
const LocalStrategy = require('passport-local');

passport.use(new LocalStrategy((username, password, done) =>
  username === 'alice' && password === 'right-pw' ? done(null, { id: 1, username }) : done(null, false)));
passport.serializeUser((user, done) => done(null, user.id));
passport.deserializeUser((id, done) => done(null, { id, username: 'alice' }));

const app = express();
app.use(express.urlencoded({ extended: false }));
app.use(session({ secret: 'test only', resave: false, saveUninitialized: false }));
app.use(passport.session());
app.get('/login', (req, res) => res.send('<form method="post" action="/login/password"><input name="username"><input type="password" name="password"></form>'));
app.post('/login/password', passport.authenticate('local', { successRedirect: '/', failureRedirect: '/login' }));
app.get('/', (req, res) => res.send(req.user ? `hello ${req.user.username}` : 'hello'));

const server = app.listen(0, '127.0.0.1', () => {
  console.log(`passport app listening on http://127.0.0.1:${server.address().port}`);
});
