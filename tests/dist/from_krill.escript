#!/usr/bin/env escript
-mode(compile). %% not erl_eval: it matched <<>> against <<"hi">>
%% krill -> Erlang by name: registers `erlbox`, prints "ready" (the test
%% then makes krill send {ping, KrillPid} to {erlbox, ThisNode}), and
%% answers {pong, <<"ok">>} to the krill pid. Exit 0 when the ping came.
main([]) ->
    register(erlbox, self()),
    io:format("ready~n"),
    receive
        {ping, P} when is_pid(P) -> P ! {pong, <<"ok">>}
    after 20000 -> halt(2)
    end,
    timer:sleep(500), %% let the reply leave before the node goes
    halt(0).
