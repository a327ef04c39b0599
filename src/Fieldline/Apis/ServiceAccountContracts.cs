using System.Text.Json.Serialization;
using Fieldline.Core;
using Fieldline.Core.ServiceAccounts;

namespace Fieldline.Apis;

/// <summary>A topic rule as a request carries it; the action arrives as a string so that a bad value is reported against its field.</summary>
internal sealed record TopicRuleRequest(string? Action, string? Pattern);

/// <summary>POST /api/v1/service-accounts. Without a password one is generated and returned once.</summary>
internal sealed record ServiceAccountCreation(string? Username, string? Description, string? Password, List<TopicRuleRequest>? Rules);

/// <summary>PUT (description and rules; absent ones become empty) and PATCH (only the fields sent).</summary>
internal sealed record ServiceAccountUpdate(string? Description, List<TopicRuleRequest>? Rules);

/// <summary>POST /api/v1/service-accounts/{username}/password: the new password, or no body to have one generated.</summary>
internal sealed record PasswordChange(string? Password);

/// <summary>A service account as the API shows it; <see cref="Password"/> only when the server generated it, in that one response.</summary>
internal sealed record ServiceAccountResponse(
    string Username,
    string? Description,
    IReadOnlyList<TopicRule> Rules,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    string? Password = null)
{
    public static ServiceAccountResponse From(ServiceAccount account, string? generatedPassword = null) => new(
        account.Username, account.Description, account.Rules, account.CreatedAt, account.UpdatedAt, generatedPassword);
}

internal sealed record ServiceAccountPageResponse(IReadOnlyList<ServiceAccountResponse> Items, string? NextCursor);

internal sealed record ServiceAccountPasswordResponse(string Username, string Password);

/// <summary>The rules for service account fields; errors are keyed by the snake_case field name.</summary>
internal static class ServiceAccountRules
{
    /// <summary>
    /// User names follow the device id rules: they are MQTT user names like device ids (and must differ from every
    /// device id), URL path segments, and safe to put into a topic pattern ({username}): no '/', '+', '#' or '$'.
    /// </summary>
    public static void CheckUsername(Dictionary<string, string[]> errors, string? username)
    {
        if (!DeviceRules.IsDeviceId(username))
        {
            errors["username"] = ["must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', '-', not starting with '.'"];
        }
    }

    public static void CheckPassword(Dictionary<string, string[]> errors, string? password)
    {
        if (password is not null && ServiceAccountPasswords.Check(password) is { } problem)
        {
            errors["password"] = [problem];
        }
    }

    public static List<TopicRule> CheckRules(Dictionary<string, string[]> errors, List<TopicRuleRequest>? rules)
    {
        var checkedRules = new List<TopicRule>();
        if (rules is null)
        {
            return checkedRules;
        }

        if (rules.Count > TopicRules.MaximumRules)
        {
            errors["rules"] = [$"must have at most {TopicRules.MaximumRules} entries"];
            return checkedRules;
        }

        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            if (rule is null)
            {
                errors[$"rules[{i}]"] = ["must be an object with action and pattern"];
                continue;
            }

            if (!WireNames.TryParse<TopicAction>(rule.Action, out var action))
            {
                errors[$"rules[{i}].action"] = [$"must be one of {WireNames.Choices<TopicAction>()}"];
            }

            if (rule.Pattern is null)
            {
                errors[$"rules[{i}].pattern"] = ["is required"];
            }
            else if (TopicRules.Check(rule.Pattern) is { } problem)
            {
                errors[$"rules[{i}].pattern"] = [problem];
            }
            else
            {
                checkedRules.Add(new TopicRule(action, rule.Pattern));
            }
        }

        return checkedRules;
    }
}
