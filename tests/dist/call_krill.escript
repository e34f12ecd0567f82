#!/usr/bin/env escript
-mode(compile).
%% Erlang's gen_server:call to krill processes on the krill node: the
%% behaviour registered as ksrv and the function process kfn each answer
%% {add, A, B} with A + B; kmute takes calls and never answers, so the
%% call times out here. Exit 0 when all went so; another status names the
%% step that failed.
main([Krill]) ->
    K = list_to_atom(Krill),
    check(2, catch gen_server:call({ksrv, K}, {add, 1, 2}, 5000), 3),
    check(3, catch gen_server:call({kfn, K}, {add, 20, 22}, 5000), 42),
    check(4, catch gen_server:call({ksrv, K}, {add, 2, 2}, 5000), 4),
    case catch gen_server:call({kmute, K}, {add, 1, 1}, 500) of
        {'EXIT', {timeout, _}} -> ok;
        Other -> io:format("kmute: ~p~n", [Other]), halt(5)
    end,
    halt(0).

check(Step, Got, Want) ->
    case Got of
        Want -> ok;
        _ -> io:format("step ~p: ~p~n", [Step, Got]), halt(Step)
    end.
