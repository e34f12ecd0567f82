#!/usr/bin/env escript
-mode(compile). %% not erl_eval: it matched <<>> against <<"hi">>
%% net_adm:ping the krill node. Exit 0 on pang (the test gives this node a
%% wrong cookie: it must be refused), 1 on pong.
main([Krill]) ->
    case net_adm:ping(list_to_atom(Krill)) of
        pang -> halt(0);
        pong -> halt(1)
    end.
