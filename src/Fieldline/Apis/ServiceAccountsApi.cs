using Fieldline.Core.Devices;
using Fieldline.Core.ServiceAccounts;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Fieldline.Apis;

/// <summary>The services the service account endpoints use, bound with [AsParameters].</summary>
internal sealed record ServiceAccountServices(
    IServiceAccountStore Store,
    IServiceAccountConnections Connections,
    TimeProvider TimeProvider,
    ILogger<ServiceAccountServices> Logger);

/// <summary>
/// /api/v1/service-accounts: MQTT clients that are not devices (integrations, tools), with a user name, a password
/// and topic rules. A generated password is shown once; only its PBKDF2 hash is stored, and no password is logged.
/// Changing the rules, the password or deleting the account closes its live connections.
/// </summary>
internal static partial class ServiceAccountsApi
{
    public static RouteGroupBuilder MapServiceAccountsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/v1/service-accounts").WithTags("Service accounts");
        api.MapPost("/", CreateAccount);
        api.MapGet("/", ListAccounts);
        api.MapGet("/{username}", GetAccount);
        api.MapPut("/{username}", ReplaceAccount);
        api.MapPatch("/{username}", PatchAccount);
        api.MapDelete("/{username}", DeleteAccount);
        api.MapPost("/{username}/password", ChangePassword);
        return api;
    }

    private static ProblemHttpResult AccountNotFound(string username) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Service account not found", detail: $"No service account has the user name '{username}'.");

    private static async Task<Results<Created<ServiceAccountResponse>, ValidationProblem, ProblemHttpResult>> CreateAccount(
        ServiceAccountCreation creation, [AsParameters] ServiceAccountServices services, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        ServiceAccountRules.CheckUsername(errors, creation.Username);
        DeviceRules.CheckLength(errors, "description", creation.Description);
        ServiceAccountRules.CheckPassword(errors, creation.Password);
        var rules = ServiceAccountRules.CheckRules(errors, creation.Rules);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var now = TruncateToMilliseconds(services.TimeProvider.GetUtcNow());
        var account = new ServiceAccount
        {
            Username = creation.Username!,
            Description = creation.Description,
            Rules = rules,
            CreatedAt = now,
            UpdatedAt = now,
        };
        var generated = creation.Password is null ? ServiceAccountPasswords.Generate() : null;
        var hash = ServiceAccountPasswords.Hash(creation.Password ?? generated!);
        switch (await services.Store.CreateAsync(account, hash, cancellationToken))
        {
            case RegistryWriteResult.Conflict:
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status409Conflict,
                    title: "Service account already exists",
                    detail: $"A service account with the user name '{account.Username}' already exists.");
            case RegistryWriteResult.NameTaken:
                return TypedResults.Problem(
                    statusCode: StatusCodes.Status409Conflict,
                    title: "User name taken",
                    detail: $"'{account.Username}' is the id of a device. Device ids and service account user names are both MQTT user names, so they must differ.");
        }

        LogAccountCreated(services.Logger, account.Username, account.Rules.Count);
        return TypedResults.Created($"/api/v1/service-accounts/{account.Username}", ServiceAccountResponse.From(account, generated));
    }

    private static async Task<Results<Ok<ServiceAccountResponse>, ProblemHttpResult>> GetAccount(
        string username, [AsParameters] ServiceAccountServices services, CancellationToken cancellationToken) =>
        await services.Store.GetAsync(username, cancellationToken) is { } account
            ? TypedResults.Ok(ServiceAccountResponse.From(account))
            : AccountNotFound(username);

    private static async Task<Results<Ok<ServiceAccountPageResponse>, ValidationProblem>> ListAccounts(
        [AsParameters] ServiceAccountServices services, int? limit, string? cursor, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        var pageSize = limit ?? DevicesApi.DefaultPageSize;
        if (pageSize is < 1 or > DevicesApi.MaximumPageSize)
        {
            errors["limit"] = [$"must be between 1 and {DevicesApi.MaximumPageSize}"];
        }

        if (cursor is not null && !DeviceRules.IsDeviceId(cursor))
        {
            errors["cursor"] = ["is not a cursor returned by this API"];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var page = await services.Store.ListAsync(pageSize, cursor, cancellationToken);
        return TypedResults.Ok(new ServiceAccountPageResponse([.. page.Items.Select(a => ServiceAccountResponse.From(a))], page.NextCursor));
    }

    private static Task<Results<Ok<ServiceAccountResponse>, ValidationProblem, ProblemHttpResult>> ReplaceAccount(
        string username, ServiceAccountUpdate update, [AsParameters] ServiceAccountServices services, CancellationToken cancellationToken) =>
        UpdateAccount(username, update, replace: true, services, cancellationToken);

    private static Task<Results<Ok<ServiceAccountResponse>, ValidationProblem, ProblemHttpResult>> PatchAccount(
        string username, ServiceAccountUpdate update, [AsParameters] ServiceAccountServices services, CancellationToken cancellationToken) =>
        UpdateAccount(username, update, replace: false, services, cancellationToken);

    private static async Task<Results<Ok<ServiceAccountResponse>, ValidationProblem, ProblemHttpResult>> UpdateAccount(
        string username, ServiceAccountUpdate update, bool replace, ServiceAccountServices services, CancellationToken cancellationToken)
    {
        var current = await services.Store.GetAsync(username, cancellationToken);
        if (current is null)
        {
            return AccountNotFound(username);
        }

        var errors = new Dictionary<string, string[]>();
        DeviceRules.CheckLength(errors, "description", update.Description);
        var rules = ServiceAccountRules.CheckRules(errors, update.Rules);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        // PUT replaces both fields (absent ones become empty); PATCH keeps what was not sent.
        var updated = current with
        {
            Description = replace ? update.Description : update.Description ?? current.Description,
            Rules = replace || update.Rules is not null ? rules : current.Rules,
            UpdatedAt = TruncateToMilliseconds(services.TimeProvider.GetUtcNow()),
        };
        if (await services.Store.UpdateAsync(updated, cancellationToken) == RegistryWriteResult.NotFound)
        {
            return AccountNotFound(username);
        }

        if (!updated.Rules.SequenceEqual(current.Rules))
        {
            // Rules are compiled at CONNECT: live connections reconnect to get the new ones.
            services.Connections.Disconnect(username, ServiceAccountChange.RulesChanged);
            LogRulesChanged(services.Logger, username, updated.Rules.Count);
        }

        return TypedResults.Ok(ServiceAccountResponse.From(updated));
    }

    private static async Task<Results<Ok<ServiceAccountPasswordResponse>, NoContent, ValidationProblem, ProblemHttpResult>> ChangePassword(
        string username, PasswordChange? change, [AsParameters] ServiceAccountServices services, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        ServiceAccountRules.CheckPassword(errors, change?.Password);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var generated = change?.Password is null ? ServiceAccountPasswords.Generate() : null;
        var hash = ServiceAccountPasswords.Hash(change?.Password ?? generated!);
        if (await services.Store.SetPasswordAsync(username, hash, TruncateToMilliseconds(services.TimeProvider.GetUtcNow()), cancellationToken) == RegistryWriteResult.NotFound)
        {
            return AccountNotFound(username);
        }

        // Connections authenticated with the old password end with it.
        services.Connections.Disconnect(username, ServiceAccountChange.CredentialsRevoked);
        LogPasswordChanged(services.Logger, username);
        return generated is null ? TypedResults.NoContent() : TypedResults.Ok(new ServiceAccountPasswordResponse(username, generated));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAccount(
        string username, [AsParameters] ServiceAccountServices services, CancellationToken cancellationToken)
    {
        if (await services.Store.DeleteAsync(username, cancellationToken) == RegistryWriteResult.NotFound)
        {
            return AccountNotFound(username);
        }

        services.Connections.Disconnect(username, ServiceAccountChange.CredentialsRevoked);
        LogAccountDeleted(services.Logger, username);
        return TypedResults.NoContent();
    }

    /// <summary>The store keeps milliseconds; responses show what a later GET returns.</summary>
    private static DateTimeOffset TruncateToMilliseconds(DateTimeOffset value) =>
        DateTimeOffset.FromUnixTimeMilliseconds(value.ToUnixTimeMilliseconds());

    [LoggerMessage(Level = LogLevel.Information, Message = "Created service account {Username} with {RuleCount} topic rule(s)")]
    private static partial void LogAccountCreated(ILogger logger, string username, int ruleCount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Service account {Username} now has {RuleCount} topic rule(s); its connections were closed")]
    private static partial void LogRulesChanged(ILogger logger, string username, int ruleCount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Replaced the password of service account {Username}")]
    private static partial void LogPasswordChanged(ILogger logger, string username);

    [LoggerMessage(Level = LogLevel.Information, Message = "Deleted service account {Username}")]
    private static partial void LogAccountDeleted(ILogger logger, string username);
}
